from ledgerflow import FlowSpec, environment, step


class SecretsFlow(FlowSpec):
    """Values that are credentials in disguise, and an @environment with a secret value."""

    @environment(vars={"DB_PASSWORD": "hunter2-env"})
    @step
    def start(self):
        self.config = {"password": "hunter2-dict", "user": "admin"}
        self.dsn = "postgresql://admin:hunter2-dsn@db.example.com/prod"
        self.settings = {"PATH": "/usr/bin", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMIK7MDENG"}
        self.awsSecretAccessKey = "abc"
        self.session = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w"
        self.notes = "x" * 3000 + " AKIAABCDEFGHIJKLMNOP"
        self.token_count = 5
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SecretsFlow()
