"""The pure core: commits, verdicts, search, prior, cost, scenario, state. No Docker; git only
to resolve refs and list a range."""
