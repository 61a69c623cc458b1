"""The faust app and everything around it: settings, topics, event records, views, CLI.

Importing this package is cheap: the faust app lives in ``streams.app`` and is only
built when that module is imported.
"""
