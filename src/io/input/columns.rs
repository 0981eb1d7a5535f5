//! Which column holds what.
//!
//! Exports name their columns in dozens of ways ("Customer ID", customer_id,
//! CustomerID, client_id, email). Matching is on names reduced to lowercase
//! letters and digits, against ordered lists of well-known names: the first
//! known name present wins, so a file with both `customer_id` and `email`
//! uses `customer_id`. Two columns that reduce to the same winning name are
//! ambiguous and the user must choose with a flag.

use std::fmt;

/// Column names given on the command line (or in a config file).
#[derive(Clone, Debug, Default)]
pub struct ColumnFlags {
    pub customer: Option<String>,
    pub date: Option<String>,
    pub amount: Option<String>,
    pub quantity: Option<String>,
    pub price: Option<String>,
    pub order: Option<String>,
}

/// Where the money of a row comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AmountColumns {
    Amount(usize),
    QuantityPrice { quantity: usize, price: usize },
}

/// Resolved column indices into a file's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub customer: usize,
    pub date: usize,
    pub amount: AmountColumns,
    pub order: Option<usize>,
    /// Columns carried into the output (`--keep`), in the order asked for.
    pub keep: Vec<usize>,
    /// The header the indices refer to.
    pub header: Vec<String>,
}

impl Mapping {
    /// Indices of every column the reader needs, for projection.
    pub fn used(&self) -> Vec<usize> {
        let mut v = vec![self.customer, self.date];
        match self.amount {
            AmountColumns::Amount(a) => v.push(a),
            AmountColumns::QuantityPrice { quantity, price } => {
                v.push(quantity);
                v.push(price)
            }
        }
        v.extend(self.order);
        v.extend(self.keep.iter().copied().filter(|k| !v.contains(k)).collect::<Vec<_>>());
        v
    }

    /// Adds the `--keep` columns, found by exact name, else ignoring case.
    pub fn with_keep(mut self, names: &[String], file: &str) -> Result<Mapping, String> {
        self.keep = names
            .iter()
            .map(|name| {
                let header = &self.header;
                header
                    .iter()
                    .position(|h| h == name)
                    .or_else(|| header.iter().position(|h| h.eq_ignore_ascii_case(name)))
                    .ok_or_else(|| {
                        format!(
                            "--keep: {file} has no column '{name}'; its columns are: {}",
                            list(header)
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    pub fn name(&self, i: usize) -> &str {
        &self.header[i]
    }

    /// The same mapping by name against another file's header.
    pub fn rebind(&self, header: &[String], file: &str) -> Result<Mapping, String> {
        let find = |i: usize| -> Result<usize, String> {
            let want = &self.header[i];
            header.iter().position(|h| h == want).ok_or_else(|| {
                format!(
                    "{file} has no column '{want}' (the first input has it); all inputs must have the same columns; {file} has: {}",
                    list(header)
                )
            })
        };
        Ok(Mapping {
            customer: find(self.customer)?,
            date: find(self.date)?,
            amount: match self.amount {
                AmountColumns::Amount(a) => AmountColumns::Amount(find(a)?),
                AmountColumns::QuantityPrice { quantity, price } => {
                    AmountColumns::QuantityPrice { quantity: find(quantity)?, price: find(price)? }
                }
            },
            order: self.order.map(find).transpose()?,
            keep: self.keep.iter().map(|&k| find(k)).collect::<Result<_, _>>()?,
            header: header.to_vec(),
        })
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "customer='{}', date='{}', ", self.name(self.customer), self.name(self.date))?;
        match self.amount {
            AmountColumns::Amount(a) => write!(f, "amount='{}'", self.name(a))?,
            AmountColumns::QuantityPrice { quantity, price } => {
                write!(f, "amount='{}' x '{}'", self.name(quantity), self.name(price))?
            }
        }
        if let Some(o) = self.order {
            write!(f, ", order='{}'", self.name(o))?;
        }
        Ok(())
    }
}

const CUSTOMER: &[&str] = &[
    "customerid",
    "customer",
    "customerno",
    "customernumber",
    "customerkey",
    "custid",
    "clientid",
    "client",
    "userid",
    "user",
    "memberid",
    "accountid",
    "buyerid",
    "shopperid",
    "contactid",
    "email",
    "customeremail",
    "emailaddress",
];
const DATE: &[&str] = &[
    "date",
    "orderdate",
    "invoicedate",
    "transactiondate",
    "purchasedate",
    "saledate",
    "createdat",
    "orderedat",
    "paidat",
    "processedat",
    "timestamp",
    "datetime",
    "transactiontime",
    "ordertime",
    "txndate",
    "created",
    "time",
];
const AMOUNT: &[&str] = &[
    "amount",
    "total",
    "revenue",
    "sales",
    "value",
    "totalamount",
    "ordertotal",
    "totalprice",
    "grandtotal",
    "netamount",
    "amountpaid",
    "saleamount",
    "subtotal",
    "linetotal",
];
const QUANTITY: &[&str] = &["quantity", "qty", "units", "unitssold", "itemquantity"];
const PRICE: &[&str] = &["unitprice", "price", "itemprice", "priceeach", "unitcost"];
const ORDER: &[&str] = &[
    "orderid",
    "ordernumber",
    "orderno",
    "invoiceno",
    "invoice",
    "invoiceid",
    "invoicenumber",
    "order",
    "transactionid",
    "receiptid",
    "receiptno",
    "basketid",
];

/// Lowercase letters and digits only: "Customer ID" and customer_id are both `customerid`.
pub fn normalize(name: &str) -> String {
    name.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Column names for messages, escaped so that a message stays on one line.
fn list(header: &[String]) -> String {
    header.iter().map(|h| format!("'{}'", h.escape_debug())).collect::<Vec<_>>().join(", ")
}

enum Found {
    One(usize),
    None,
    Many(Vec<usize>),
}

fn auto(header: &[String], norm: &[String], names: &[&str]) -> Found {
    for want in names {
        let hits: Vec<usize> = (0..header.len()).filter(|&i| norm[i] == *want).collect();
        match hits.len() {
            0 => continue,
            1 => return Found::One(hits[0]),
            _ => return Found::Many(hits),
        }
    }
    Found::None
}

/// Resolves the mapping for a header. `file` names the file in messages.
pub fn resolve(header: &[String], flags: &ColumnFlags, file: &str) -> Result<Mapping, String> {
    let norm: Vec<String> = header.iter().map(|h| normalize(h)).collect();
    let explicit = |name: &str, flag: &str| -> Result<usize, String> {
        if let Some(i) = header.iter().position(|h| h == name) {
            return Ok(i);
        }
        let n = normalize(name);
        let hits: Vec<usize> = (0..header.len()).filter(|&i| norm[i] == n).collect();
        match hits.len() {
            1 => Ok(hits[0]),
            0 => Err(format!(
                "{file} has no column '{name}' (given with {flag}); its columns are: {}",
                list(header)
            )),
            _ => Err(format!(
                "{flag} '{name}' matches several columns of {file}: {}; give the exact name",
                list(&hits.iter().map(|&i| header[i].clone()).collect::<Vec<_>>())
            )),
        }
    };
    let pick =
        |flag_value: &Option<String>, flag: &str, what: &str, names: &[&str], required: bool| {
            if let Some(name) = flag_value {
                return explicit(name, flag).map(Some);
            }
            match auto(header, &norm, names) {
                Found::One(i) => Ok(Some(i)),
                Found::None if !required => Ok(None),
                Found::None => Err(format!(
                    "no {what} column found in {file}; its columns are: {}; pass {flag} COLUMN",
                    list(header)
                )),
                Found::Many(hits) => Err(format!(
                    "several columns of {file} could be the {what} column: {}; pass {flag} COLUMN",
                    list(&hits.iter().map(|&i| header[i].clone()).collect::<Vec<_>>())
                )),
            }
        };

    let customer = pick(&flags.customer, "--customer", "customer", CUSTOMER, true)?.unwrap();
    let date = pick(&flags.date, "--date", "date", DATE, true)?.unwrap();
    let amount = if flags.quantity.is_some() || flags.price.is_some() {
        let quantity = pick(&flags.quantity, "--quantity", "quantity", QUANTITY, true)?.unwrap();
        let price = pick(&flags.price, "--price", "price", PRICE, true)?.unwrap();
        AmountColumns::QuantityPrice { quantity, price }
    } else if let Some(a) = pick(&flags.amount, "--amount", "amount", AMOUNT, false)? {
        AmountColumns::Amount(a)
    } else {
        let q = pick(&None, "--quantity", "quantity", QUANTITY, false)?;
        let p = pick(&None, "--price", "price", PRICE, false)?;
        match (q, p) {
            (Some(quantity), Some(price)) => AmountColumns::QuantityPrice { quantity, price },
            _ => {
                return Err(format!(
                    "no amount column found in {file}; its columns are: {}; pass --amount COLUMN, or --quantity COLUMN --price COLUMN for line items",
                    list(header)
                ))
            }
        }
    };
    let order = pick(&flags.order, "--order", "order", ORDER, false)?;

    let mapping =
        Mapping { customer, date, amount, order, keep: Vec::new(), header: header.to_vec() };
    let used = mapping.used();
    for (k, &i) in used.iter().enumerate() {
        if used[..k].contains(&i) {
            return Err(format!(
                "column '{}' of {file} was chosen for two roles ({mapping}); pass the column flags explicitly",
                header[i]
            ));
        }
    }
    Ok(mapping)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn common_exports() {
        let m = resolve(
            &h(&[
                "InvoiceNo",
                "StockCode",
                "Description",
                "Quantity",
                "InvoiceDate",
                "UnitPrice",
                "CustomerID",
                "Country",
            ]),
            &ColumnFlags::default(),
            "f",
        )
        .unwrap();
        assert_eq!(m.customer, 6);
        assert_eq!(m.date, 4);
        assert_eq!(m.amount, AmountColumns::QuantityPrice { quantity: 3, price: 5 });
        assert_eq!(m.order, Some(0));

        let m =
            resolve(&h(&["Name", "Email", "Created at", "Total"]), &ColumnFlags::default(), "f")
                .unwrap();
        assert_eq!(
            (m.customer, m.date, m.amount.clone(), m.order),
            (1, 2, AmountColumns::Amount(3), None)
        );

        let m = resolve(
            &h(&["customer_id", "email", "order_date", "amount"]),
            &ColumnFlags::default(),
            "f",
        )
        .unwrap();
        assert_eq!(m.customer, 0);
    }

    #[test]
    fn errors_name_columns_and_flags() {
        let e =
            resolve(&h(&["who", "when", "amount"]), &ColumnFlags::default(), "x.csv").unwrap_err();
        assert!(e.contains("no customer column found in x.csv"), "{e}");
        assert!(e.contains("'who', 'when', 'amount'") && e.contains("--customer"), "{e}");
        let e = resolve(
            &h(&["Customer ID", "customer_id", "date", "amount"]),
            &ColumnFlags::default(),
            "x.csv",
        )
        .unwrap_err();
        assert!(e.contains("several columns") && e.contains("--customer"), "{e}");
        let flags = ColumnFlags { customer: Some("nope".into()), ..Default::default() };
        let e = resolve(&h(&["customer", "date", "amount"]), &flags, "x.csv").unwrap_err();
        assert!(e.contains("no column 'nope'") && e.contains("--customer"), "{e}");
    }

    #[test]
    fn flags_win() {
        let flags = ColumnFlags {
            customer: Some("who".into()),
            date: Some("WHEN".into()),
            ..Default::default()
        };
        let m = resolve(&h(&["who", "when", "amount"]), &flags, "f").unwrap();
        assert_eq!((m.customer, m.date), (0, 1));
    }
}
