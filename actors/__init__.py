"""Ray actors and Serve deployments: thin shells around ``tinywindow`` logic.

Every actor is a plain class; ``ray.remote`` is applied at the edge (see ``remote``), so the
same class runs in-process in unit tests.
"""
