"""The machinery: Docker engines, build and repro containers, the tool's clone and build trees,
the engine farm, and the adapter that offers them to the policy as an `Env`."""
