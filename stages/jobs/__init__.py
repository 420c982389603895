"""Jobs: what a user runs. The Job protocol (`base`), the graph every job runs on (`graph`), the
label and live jobs, the terminal (`progress`), and the `vidpipe` command line (`cli`)."""
