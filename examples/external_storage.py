"""External storage: keep a large object outside the artifacts and store only its key.

`S3(run=self)` here is backed by the ledger itself, so this runs with no cloud account.
"""

from ledgerflow import FlowSpec, step, S3  # noqa: I001  (the spec page's line, verbatim)


def load_huge_dataset():
    return {"rows": [{"id": i, "value": i * 0.5} for i in range(50000)]}


class ExternalStorageFlow(FlowSpec):
    @step
    def start(self):
        large_data = load_huge_dataset()
        # Store in S3, save only reference
        with S3(run=self) as s3:
            s3.put("large_data", large_data)
        self.data_key = "large_data"
        self.next(self.end)

    @step
    def end(self):
        # Load from S3 when needed
        with S3(run=self) as s3:
            large_data = s3.get(self.data_key).blob
        print(f"Rows: {len(large_data['rows'])}")


if __name__ == "__main__":
    ExternalStorageFlow()
