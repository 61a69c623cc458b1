"""The faust app and everything around it: settings, topics, event records, views, CLI.

Importing any of it is cheap and has no side effects: the faust app is built by
``streams.app.create_worker`` when a worker starts.
"""
