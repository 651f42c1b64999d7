"""Ray actors and Serve deployments: thin shells around ``tinywindow`` logic.

Every actor is a plain class; ``ray.remote`` is applied at the edge (see ``remote``), so the
same class runs in-process in unit tests.
"""

import os

# Ray reads these once, when it is first imported (modules here import it): token
# authentication stays on (CVE-2023-48022) and nothing phones home, unless the operator set
# them otherwise.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
