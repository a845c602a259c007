"""Runbook automation: bounded fan-out, the toolbox container, the runner, results and runbooks."""
