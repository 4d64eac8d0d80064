from ledgerflow import FlowSpec, step


class CredFlow(FlowSpec):
    @step
    def start(self):
        self.api_key = "abc"
        self.note = "AKIAABCDEFGHIJKLMNOP"
        self.token_count = 5
        self._password = "hidden"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CredFlow()
