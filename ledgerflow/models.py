"""The ledger's tables, declared as peewee models. Declarations only: no queries here.

Tables are singular (`run`, `task`, `artifact`, ...); the documented, friendlier views
(`runs`, `tasks`, `artifacts`) are created by the migrations in `schema.py`. All times are
ISO-8601 UTC text with microseconds (`2026-11-26T13:07:36.123456Z`), so they sort as text
and work with SQLite's date functions.

peewee is a schema tool here: these models declare the version-1 tables and generate their
DDL (`python -m ledgerflow.models > ledgerflow/ddl_v1.py`), which is what creates a ledger;
no run, open or read imports this module. Tables and indexes added since are plain-SQL
migrations in `schema.py`. The models are bound to a deferred database that is never
opened: it only renders the DDL.
"""

from __future__ import annotations

import peewee as pw

database = pw.SqliteDatabase(None)


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Meta(BaseModel):
    """Key/value facts about the file: ledger_id (uuid), created_at, created_on (host)."""

    key = pw.TextField(primary_key=True)
    value = pw.TextField()


class Flow(BaseModel):
    name = pw.TextField(unique=True)
    created_at = pw.TextField()


class Run(BaseModel):
    flow = pw.ForeignKeyField(Flow, backref="runs", on_delete="CASCADE", index=False)
    # Time-ordered digits with a random tail: unique across ledgers, so merging never collides.
    run_id = pw.TextField()
    status = pw.TextField(index=True)  # running | succeeded | failed | crashed
    created_at = pw.TextField()
    finished_at = pw.TextField(null=True)
    params = pw.TextField(default="{}")  # JSON object: parameter name -> value (or its repr)
    user = pw.TextField(null=True)
    host = pw.TextField(null=True)
    pid = pw.IntegerField(null=True)
    heartbeat_at = pw.TextField(null=True)
    script_name = pw.TextField(null=True)
    code = pw.TextField(null=True)  # the flow file's source at run time
    origin_run_id = pw.TextField(null=True)  # set by resume
    python_version = pw.TextField(null=True)
    ledgerflow_version = pw.TextField(null=True)
    # The machine (its ledgerflow machine id) that ran it: pickles from elsewhere need trust.
    machine_id = pw.TextField(null=True)
    graph_info = pw.TextField(null=True)  # JSON: the flow's graph (the `_graph_info` artifact)

    class Meta:
        indexes = ((("flow", "run_id"), True), (("flow", "created_at"), False))


class Task(BaseModel):
    """One attempt of one task. The Client API shows the highest attempt."""

    run = pw.ForeignKeyField(Run, backref="tasks", on_delete="CASCADE", index=False)
    step = pw.TextField()
    task_id = pw.TextField()
    attempt = pw.IntegerField(default=0)
    # running | succeeded | failed | caught | crashed | interrupted
    status = pw.TextField()
    started_at = pw.TextField()
    finished_at = pw.TextField(null=True)
    foreach_index = pw.IntegerField(null=True)
    foreach_stack = pw.TextField(default="[]")  # JSON list of [step, var, num_splits, index]
    exception_type = pw.TextField(null=True)  # e.g. 'builtins.ValueError'
    exception = pw.TextField(null=True)  # str(exception)
    traceback = pw.TextField(null=True)
    origin_pathspec = pw.TextField(null=True)  # the task a resume cloned this one from
    # JSON {"targets": [...], "foreach": var, "num_splits": n, "condition": var}: what
    # self.next() did; NULL for a failed task or the end step.
    transition = pw.TextField(null=True)

    class Meta:
        indexes = (
            (("run", "step", "task_id", "attempt"), True),
            (("status", "started_at"), False),
        )


class TaskParent(BaseModel):
    """Lineage: which tasks fed which."""

    task = pw.ForeignKeyField(Task, on_delete="CASCADE", index=False)
    parent = pw.ForeignKeyField(Task, index=True, on_delete="CASCADE")

    class Meta:
        primary_key = pw.CompositeKey("task", "parent")


class Blob(BaseModel):
    """A stored value, once per SHA-256 of its raw encoding. Data lives in BlobChunk rows."""

    sha = pw.TextField(primary_key=True)
    codec = pw.TextField(default="zstd")
    encoding = pw.TextField()  # json | pickle
    raw_size = pw.IntegerField()
    stored_size = pw.IntegerField()
    chunk_size = pw.IntegerField()
    n_chunks = pw.IntegerField()
    python_version = pw.TextField(null=True)  # of the writer; pickles are version-sensitive
    created_at = pw.TextField()
    # A bounded text preview of the value (preview.preview): a fact of the value, so kept once
    # per blob rather than on every artifact row that passes the value on.
    preview = pw.TextField(default="")


class BlobChunk(BaseModel):
    """One zstd frame of a blob. Chunks keep every row under SQLite's 1 GB value limit."""

    blob = pw.ForeignKeyField(
        Blob, column_name="sha", field="sha", on_delete="CASCADE", index=False
    )
    seq = pw.IntegerField()
    data = pw.BlobField()

    class Meta:
        indexes = ((("blob", "seq"), True),)


class Artifact(BaseModel):
    task = pw.ForeignKeyField(Task, backref="artifacts", on_delete="CASCADE", index=False)
    name = pw.TextField()
    # No index on sha: only gc and export look artifacts up by blob, and they scan.
    blob = pw.ForeignKeyField(Blob, column_name="sha", field="sha", index=False)
    encoding = pw.TextField()
    type = pw.TextField()  # 'module.Qualname' of the value's type
    size = pw.IntegerField()  # raw (uncompressed) bytes
    # The value itself when it is a number, bool or short string; NULL otherwise. No type
    # affinity, so ints stay ints and floats stay floats for `order by value`.
    value = pw.BareField(null=True)
    # True when the task passed the artifact on unchanged from a parent (same name and SHA).
    inherited = pw.BooleanField(default=False)

    class Meta:
        indexes = ((("task", "name"), True), (("name", "value"), False))


class Tag(BaseModel):
    run = pw.ForeignKeyField(Run, backref="tag_rows", on_delete="CASCADE", index=False)
    tag = pw.TextField(index=True)
    system = pw.BooleanField(default=False)

    class Meta:
        indexes = ((("run", "tag"), True),)


class Log(BaseModel):
    task = pw.ForeignKeyField(Task, on_delete="CASCADE", index=False)
    stream = pw.TextField()  # stdout | stderr
    text = pw.TextField()

    class Meta:
        indexes = ((("task", "stream"), True),)


class S3Object(BaseModel):
    """An object stored through `S3(run=...)`: a key scoped to a run, content in a blob."""

    run = pw.ForeignKeyField(Run, on_delete="CASCADE", index=False)
    key = pw.TextField()
    blob = pw.ForeignKeyField(Blob, column_name="sha", field="sha", index=True)
    encoding = pw.TextField()  # bytes | text | json | pickle
    size = pw.IntegerField()
    created_at = pw.TextField()

    class Meta:
        table_name = "s3_object"
        indexes = ((("run", "key"), True),)


MODELS = [Meta, Flow, Run, Task, TaskParent, Blob, BlobChunk, Artifact, Tag, Log, S3Object]


def create_statements() -> list[str]:
    """The CREATE TABLE / CREATE INDEX statements these models make, in order. Frozen into
    ledgerflow/ddl_v1.py (so creating a ledger never imports peewee); tests/test_views.py
    fails when they differ. Regenerate: python -m ledgerflow.models > ledgerflow/ddl_v1.py"""
    statements = []
    for model in MODELS:
        schema = model._schema  # type: ignore[attr-defined]  # set by peewee's metaclass
        for statement in [schema._create_table(safe=True), *schema._create_indexes(safe=True)]:
            sql, params = database.get_sql_context().sql(statement).query()
            assert not params, sql
            statements.append(sql)
    return statements


if __name__ == "__main__":
    print('"""Schema version 1\'s tables and indexes: generated from ledgerflow/models.py by')
    print('`python -m ledgerflow.models > ledgerflow/ddl_v1.py`; never edit by hand."""')
    print()
    print("TABLES_V1 = [")
    for sql in create_statements():
        print(f"    {sql!r},")
    print("]")
