"""Registry fakes that speak real HTTP on 127.0.0.1: the tests' and the detection suite's registries."""
