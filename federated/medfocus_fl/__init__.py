"""MedFocus on Flower: one support head trained across sites whose images never leave them.

`client_app` (a site), `server_app` (the aggregator), `task` (the medfocus binary's calls),
`report` (the run's report and plot), `secure` (SecAgg+), `deploy` and `credentials` (a real
deployment with TLS and SuperNode authentication)."""
