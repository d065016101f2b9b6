"""Repositories: provider specs, clone-URL policy, ref resolution and fetching one commit.

May import the shared pieces (config, errors) only; nothing here knows of builds or sessions.
"""
