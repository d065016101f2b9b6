"""Sessions: launching hardened Jupyter containers, admission and quotas, the culler's pure
decisions, restart reconciliation, questions asked of a session's Jupyter, the helpers
minibinder adds inside a session (warning banner, zip download), and kept work (`keeping`,
pure: whose, which files, where a clash goes; `kept_work`: the shelf, save and restore).

May import the shared pieces (config, store, Docker client, metrics, errors); nothing here knows
of repositories, builds or the proxy (the proxy is handed a route lookup instead).
"""
