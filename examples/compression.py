"""Large artifacts, compressed by hand before storing (the ledger also zstd-compresses)."""

import gzip
import pickle

from ledgerflow import FlowSpec, step


def load_huge_dataset():
    return {"rows": [{"id": i, "text": f"row {i}"} for i in range(10000)]}


class CompressionFlow(FlowSpec):
    @step
    def start(self):
        large_data = load_huge_dataset()
        # Compress before storing
        self.compressed_data = gzip.compress(pickle.dumps(large_data))
        self.next(self.end)

    @step
    def end(self):
        # Decompress when needed
        large_data = pickle.loads(gzip.decompress(self.compressed_data))
        print(f"Rows: {len(large_data['rows'])}")


if __name__ == "__main__":
    CompressionFlow()
