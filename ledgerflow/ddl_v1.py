"""Schema version 1's tables and indexes, frozen: migration 1 runs them (schema.py). They were
generated from the peewee models of version 1, since replaced by the declarations in
tables.py, which describe the schema as all migrations leave it. Never edit: a change to the
schema is a new migration."""

TABLES_V1 = [
    'CREATE TABLE IF NOT EXISTS "meta" ("key" TEXT NOT NULL PRIMARY KEY, "value" TEXT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS "flow" ("id" INTEGER NOT NULL PRIMARY KEY, "name" TEXT NOT NULL, "created_at" TEXT NOT NULL)',
    'CREATE UNIQUE INDEX IF NOT EXISTS "flow_name" ON "flow" ("name")',
    'CREATE TABLE IF NOT EXISTS "run" ("id" INTEGER NOT NULL PRIMARY KEY, "flow_id" INTEGER NOT NULL, "run_id" TEXT NOT NULL, "status" TEXT NOT NULL, "created_at" TEXT NOT NULL, "finished_at" TEXT, "params" TEXT NOT NULL, "user" TEXT, "host" TEXT, "pid" INTEGER, "heartbeat_at" TEXT, "script_name" TEXT, "code" TEXT, "origin_run_id" TEXT, "python_version" TEXT, "ledgerflow_version" TEXT, "machine_id" TEXT, "graph_info" TEXT, FOREIGN KEY ("flow_id") REFERENCES "flow" ("id") ON DELETE CASCADE)',
    'CREATE INDEX IF NOT EXISTS "run_status" ON "run" ("status")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "run_flow_id_run_id" ON "run" ("flow_id", "run_id")',
    'CREATE INDEX IF NOT EXISTS "run_flow_id_created_at" ON "run" ("flow_id", "created_at")',
    'CREATE TABLE IF NOT EXISTS "task" ("id" INTEGER NOT NULL PRIMARY KEY, "run_id" INTEGER NOT NULL, "step" TEXT NOT NULL, "task_id" TEXT NOT NULL, "attempt" INTEGER NOT NULL, "status" TEXT NOT NULL, "started_at" TEXT NOT NULL, "finished_at" TEXT, "foreach_index" INTEGER, "foreach_stack" TEXT NOT NULL, "exception_type" TEXT, "exception" TEXT, "traceback" TEXT, "origin_pathspec" TEXT, "transition" TEXT, FOREIGN KEY ("run_id") REFERENCES "run" ("id") ON DELETE CASCADE)',
    'CREATE UNIQUE INDEX IF NOT EXISTS "task_run_id_step_task_id_attempt" ON "task" ("run_id", "step", "task_id", "attempt")',
    'CREATE INDEX IF NOT EXISTS "task_status_started_at" ON "task" ("status", "started_at")',
    'CREATE TABLE IF NOT EXISTS "task_parent" ("task_id" INTEGER NOT NULL, "parent_id" INTEGER NOT NULL, PRIMARY KEY ("task_id", "parent_id"), FOREIGN KEY ("task_id") REFERENCES "task" ("id") ON DELETE CASCADE, FOREIGN KEY ("parent_id") REFERENCES "task" ("id") ON DELETE CASCADE)',
    'CREATE INDEX IF NOT EXISTS "task_parent_parent_id" ON "task_parent" ("parent_id")',
    'CREATE TABLE IF NOT EXISTS "blob" ("sha" TEXT NOT NULL PRIMARY KEY, "codec" TEXT NOT NULL, "encoding" TEXT NOT NULL, "raw_size" INTEGER NOT NULL, "stored_size" INTEGER NOT NULL, "chunk_size" INTEGER NOT NULL, "n_chunks" INTEGER NOT NULL, "python_version" TEXT, "created_at" TEXT NOT NULL, "preview" TEXT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS "blob_chunk" ("id" INTEGER NOT NULL PRIMARY KEY, "sha" TEXT NOT NULL, "seq" INTEGER NOT NULL, "data" BLOB NOT NULL, FOREIGN KEY ("sha") REFERENCES "blob" ("sha") ON DELETE CASCADE)',
    'CREATE UNIQUE INDEX IF NOT EXISTS "blob_chunk_sha_seq" ON "blob_chunk" ("sha", "seq")',
    'CREATE TABLE IF NOT EXISTS "artifact" ("id" INTEGER NOT NULL PRIMARY KEY, "task_id" INTEGER NOT NULL, "name" TEXT NOT NULL, "sha" TEXT NOT NULL, "encoding" TEXT NOT NULL, "type" TEXT NOT NULL, "size" INTEGER NOT NULL, "value", "inherited" INTEGER NOT NULL, FOREIGN KEY ("task_id") REFERENCES "task" ("id") ON DELETE CASCADE, FOREIGN KEY ("sha") REFERENCES "blob" ("sha"))',
    'CREATE UNIQUE INDEX IF NOT EXISTS "artifact_task_id_name" ON "artifact" ("task_id", "name")',
    'CREATE INDEX IF NOT EXISTS "artifact_name_value" ON "artifact" ("name", "value")',
    'CREATE TABLE IF NOT EXISTS "tag" ("id" INTEGER NOT NULL PRIMARY KEY, "run_id" INTEGER NOT NULL, "tag" TEXT NOT NULL, "system" INTEGER NOT NULL, FOREIGN KEY ("run_id") REFERENCES "run" ("id") ON DELETE CASCADE)',
    'CREATE INDEX IF NOT EXISTS "tag_tag" ON "tag" ("tag")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "tag_run_id_tag" ON "tag" ("run_id", "tag")',
    'CREATE TABLE IF NOT EXISTS "log" ("id" INTEGER NOT NULL PRIMARY KEY, "task_id" INTEGER NOT NULL, "stream" TEXT NOT NULL, "text" TEXT NOT NULL, FOREIGN KEY ("task_id") REFERENCES "task" ("id") ON DELETE CASCADE)',
    'CREATE UNIQUE INDEX IF NOT EXISTS "log_task_id_stream" ON "log" ("task_id", "stream")',
    'CREATE TABLE IF NOT EXISTS "s3_object" ("id" INTEGER NOT NULL PRIMARY KEY, "run_id" INTEGER NOT NULL, "key" TEXT NOT NULL, "sha" TEXT NOT NULL, "encoding" TEXT NOT NULL, "size" INTEGER NOT NULL, "created_at" TEXT NOT NULL, FOREIGN KEY ("run_id") REFERENCES "run" ("id") ON DELETE CASCADE, FOREIGN KEY ("sha") REFERENCES "blob" ("sha"))',
    'CREATE INDEX IF NOT EXISTS "s3_object_sha" ON "s3_object" ("sha")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "s3_object_run_id_key" ON "s3_object" ("run_id", "key")',
]
