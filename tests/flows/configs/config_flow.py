"""Configs as Metaflow 2.13+ has them: a file default, a value default, a custom parser,
values in decorators at class level (direct reads, config_expr, ** unpacking), a Parameter
default read from a config, and `self.cfg.x` in steps. Runs unchanged under Metaflow
2.19.39 with the import switched (tests/test_configs.py compares)."""

import json
import os

from ledgerflow import (
    Config,
    FlowSpec,
    Parameter,
    config_expr,
    current,
    environment,
    project,
    resources,
    retry,
    step,
)


def kv_parser(text):
    """'key=value' lines into a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@project(name=config_expr("cfg.project"))
class ConfigFlow(FlowSpec):
    cfg = Config("cfg", default="cfg.json")
    limits = Config("limits", default_value={"cpu": 2, "retries": 1, "mode": "fast"})
    labels = Config("labels", default_value="team=ml\nowner=ana", parser=kv_parser)
    alpha = Parameter("alpha", default=cfg.alpha)

    @resources(cpu=limits.cpu, memory=config_expr("limits.cpu * 1000"))
    @retry(times=limits.retries)
    @environment(vars={"MODE": config_expr("limits.mode.upper()")})
    @step
    def start(self):
        self.model = self.cfg.model.name
        self.layers = self.cfg["model"]["layers"]
        self.owner = self.labels.owner
        self.mode = os.environ["MODE"]
        self.alpha_seen = self.alpha
        self.project = current.project_name
        self.cfg_is_dict = isinstance(self.cfg, dict)
        self.next(self.end)

    @step
    def end(self):
        if self.limits.mode == "fail" and not os.environ.get("CONFIG_FLOW_OK"):
            raise RuntimeError("failing as the config says")
        self.dumped = json.dumps(self.cfg)
        self.limits_cpu = self.limits.cpu


if __name__ == "__main__":
    ConfigFlow()
