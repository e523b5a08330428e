"""The data groups a test split is reported by: the one list of them.

Rows name their group in an optional `group` column (the synthetic world writes one of these;
another dataset's rows default to `known`). Evaluations count every row overall and, per group,
the rows of these groups; a group outside the list counts overall only.
"""

GROUPS = ("known", "novel", "non_object", "multi")
LABELS = {"non_object": "non-object"}  # how a log line names a group, where not by its name


def label(group: str) -> str:
    return LABELS.get(group, group)
