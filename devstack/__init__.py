"""Run the whole system on one machine: prepare each service, start them, stop them cleanly."""
