"""The one door to the Kubernetes API: client, pool, kubeconfig, API paths, targets, watch, streams."""
