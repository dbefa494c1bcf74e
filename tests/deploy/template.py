"""Reading ``template.yaml`` the way CloudFormation would with default parameters.

A small resolver for the intrinsic functions the template uses (``Ref``, ``Fn::If``,
``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Split``,
``Fn::Select``, ``Condition``), so that tests
take handlers, code locations, layers and environments from the template itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
NO_VALUE = object()


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    document: dict[str, Any] = yaml_parse(path.read_text())
    return document


class Resolver:
    """Evaluates intrinsic functions with the parameters' defaults (or ``overrides``)."""

    def __init__(self, template: dict[str, Any], overrides: dict[str, Any] | None = None) -> None:
        self.template = template
        self.parameters = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}
        self.parameters.update(overrides or {})

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any) -> Any:  # noqa: PLR0911 - one branch per intrinsic
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref":
                if argument == "AWS::NoValue":
                    return NO_VALUE
                if argument in self.parameters:
                    value = self.parameters[argument]
                    spec = self.template["Parameters"][argument]
                    if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                        return [part for part in value.split(",") if part] if value else [""]
                    return value
                return f"<{argument}>"
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.value(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (self.value(item) for item in argument)
                return left == right
            if key == "Fn::Not":
                return not self.value(argument[0])
            if key == "Fn::And":
                return all(self.value(item) for item in argument)
            if key == "Condition":
                return self.condition(argument)
            if key == "Fn::Sub":
                text, names = (argument, {}) if isinstance(argument, str) else argument
                variables = {name: self.value(value) for name, value in names.items()}

                def substitute(match: re.Match[str]) -> str:
                    name = match.group(1)
                    return str(variables[name] if name in variables else self.value({"Ref": name}))

                return re.sub(r"\$\{([^}]+)\}", substitute, text)
            if key == "Fn::Split":
                separator, text = argument
                return str(self.value(text)).split(separator)
            if key == "Fn::Select":
                index, items = argument
                return self.value(items)[int(index)]
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.value(items))
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}


@dataclass(frozen=True)
class Function:
    """A function of the template, as SAM would build and run it."""

    logical_id: str
    handler: str
    runtime: str
    environment: dict[str, str]
    layers: list[str]

    def sam_env_vars(self, env_file: dict[str, dict[str, str]]) -> dict[str, str]:
        """What ``sam local invoke --env-vars`` applies: the file's ``Parameters``, then
        this function's own entry, for the variables the template declares only (SAM
        drops the others)."""
        given = {**env_file.get("Parameters", {}), **env_file.get(self.logical_id, {})}
        return {name: value for name, value in given.items() if name in self.environment}

    @property
    def module(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def attribute(self) -> str:
        return self.handler.rpartition(".")[2]


def functions(template: dict[str, Any], overrides: dict[str, Any] | None = None) -> list[Function]:
    """Every AWS::Serverless::Function the parameters create, with Globals applied."""
    resolver = Resolver(template, overrides)
    globals_ = resolver.value(template.get("Globals", {}).get("Function", {}))
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        properties = resolver.value(resource["Properties"])
        environment = dict(globals_.get("Environment", {}).get("Variables", {}))
        environment.update(properties.get("Environment", {}).get("Variables", {}))
        layers = properties.get("Layers", globals_.get("Layers", []))
        found.append(
            Function(
                logical_id=logical_id,
                handler=properties["Handler"],
                runtime=properties.get("Runtime", globals_.get("Runtime")),
                environment={k: str(v) for k, v in environment.items()},
                layers=[str(layer).strip("<>") for layer in layers],
            )
        )
    return found
