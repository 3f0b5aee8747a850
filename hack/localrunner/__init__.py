"""DevPlane's local runner: plays the kubelet's part for workspace pods on this machine.

`podspec` turns a Pod (plus the Secrets, ConfigMaps and volumes it references) into local
process specs; `supervisor` runs them; `watcher` follows the API server; `stack` starts the
whole demo system (hack/demo.py and tests/e2e use it).
"""
