"""Private artifacts: attributes starting with _ are not persisted."""

from ledgerflow import FlowSpec, step


class PrivateArtifacts(FlowSpec):
    @step
    def start(self):
        self._temp_data = "not saved"  # Private, ephemeral
        self.important_data = "saved"  # Saved as artifact
        self.next(self.end)

    @step
    def end(self):
        print(f"important_data: {self.important_data}")
        print(f"has _temp_data here: {hasattr(self, '_temp_data')}")


if __name__ == "__main__":
    PrivateArtifacts()
