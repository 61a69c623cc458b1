"""Clients of the outside world: object store, database, CloudFront, Bedrock.

Each client wraps its library's exceptions into ``streams.errors`` at this boundary.
"""
