//! What a command does, without the command line: the steps and the rules
//! that several commands share (which models are fitted, when a fit is
//! accepted), behind options a caller builds.
