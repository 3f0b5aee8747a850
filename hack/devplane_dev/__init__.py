"""DevPlane's development harness: what the tests, `make demo` and the benchmarks use to run
the system on one machine. Installed from the checkout (``pip install -e hack/``), never
shipped: the product's wheel holds only devplane_api, devplane_spawner, devplane_authproxy
and devplane_operator.
"""
