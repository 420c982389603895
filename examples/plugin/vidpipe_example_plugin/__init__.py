"""An example vidpipe plug-in: see pyproject.toml for what it registers."""
