"""Inspecting artifacts with the Client API, as on the spec page.

Run `python examples/my_flow.py run` first; then `python examples/inspect_artifacts.py [RUN_ID]`
(default: the latest run of MyFlow). The spec's `Run('MyFlow/123')` needs a real run id.
"""

import sys

from ledgerflow import Flow, Run

run_id = sys.argv[1] if len(sys.argv) > 1 else Flow("MyFlow").latest_run.id

# Get a specific run
run = Run(f"MyFlow/{run_id}")
# Access a step
step = run["process"]
# Access the task
task = step.task
# Get artifacts
print(task.data.accuracy)  # Access specific artifact
print(task.data.model)  # Access another artifact
# Or use DataArtifact directly
artifact = task["accuracy"]
print(artifact.data)  # The actual value
print(artifact.sha)  # Unique identifier
print(artifact.finished_at)  # When it was created
