from ledgerflow import FlowSpec, step


class TagsArtFlow(FlowSpec):
    @step
    def start(self):
        self.tags = ["a", "b"]
        self.steps = 3
        self.run = "r"
        self.next(self.end)

    @step
    def end(self):
        print(self.tags, self.steps, self.run)


if __name__ == "__main__":
    TagsArtFlow()
