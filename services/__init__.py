"""Clients of the outside world: object store, database, CloudFront, Bedrock.

Each client wraps its library's exceptions into ``imaging.errors`` at this boundary.
"""
