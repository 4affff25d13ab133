"""The dependency tracker: invocations recorded as parent run -> child run, read as a graph.

Nodes are artifacts that ran; an edge parent -> child counts the times a run of the
parent invoked the child. Depth is the longest chain of actual invocations, the
top-level one included (a run invoked by a user has depth 1).
"""

from kernel.db import Database
from kernel.models import Graph, GraphEdge, GraphNode


def dependency_graph(db: Database, top: int = 5) -> Graph:
    edges = [
        GraphEdge(**r)
        for r in db.rows(
            "SELECT p.artifact_id AS parent, c.artifact_id AS child, COUNT(*) AS invocations"
            " FROM runs c JOIN runs p ON p.id = c.parent_run_id"
            " GROUP BY p.artifact_id, c.artifact_id ORDER BY invocations DESC, parent, child"
        )
    ]
    nodes = [
        GraphNode(**r)
        for r in db.rows(
            "SELECT a.id, a.name, a.owner, COUNT(r.id) AS invocations,"
            " (SELECT COUNT(DISTINCT p.artifact_id) FROM runs c JOIN runs p ON p.id = c.parent_run_id"
            "  WHERE c.artifact_id = a.id) AS invoked_by"
            " FROM artifacts a JOIN runs r ON r.artifact_id = a.id GROUP BY a.id ORDER BY a.name, a.id"
        )
    ]
    depth = db.one("SELECT COALESCE(MAX(depth), 0) AS d FROM runs WHERE status IS NOT 'rejected'")
    reused = sorted((n for n in nodes if n.invoked_by), key=lambda n: (-n.invoked_by, -n.invocations, n.name))
    return Graph(nodes=nodes, edges=edges, depth=int(depth["d"]) if depth else 0, most_reused=reused[:top])
