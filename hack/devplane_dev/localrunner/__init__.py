"""DevPlane's local runner: plays the kubelet's part for workspace pods on this machine.

`podspec` turns a Pod (plus the Secrets, ConfigMaps and volumes it references) into local
process specs; `supervisor` runs them; `watcher` follows the API server; `kube` is the small
API client the demo uses; `runs` marks and stops a demo run's processes; `stack` starts the
whole demo system (hack/demo.py and tests/e2e use it). It stands in for a real node and
goes away when the demo has one.
"""
