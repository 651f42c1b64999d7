"""Serving contracts without Ray: bearer-token auth and request/response payloads.

Ray Serve deployments live in ``actors/serving.py``.
"""
