"""Flow classes for tests/test_graph.py and tests/test_lint.py.

Plain classes (not FlowSpec subclasses): the graph only needs @step methods and
their source. Each "Bad*" class breaks exactly one lint rule; tests find the
expected line numbers by searching the source, so lines here may move freely.
"""

# ruff: noqa
from ledgerflow.decorators import step


class _Deco:
    """Stand-in for a step decorator such as @retry: appends itself to f.decorators."""

    def __init__(self, name, **attributes):
        self.name = name
        self.attributes = attributes

    def __call__(self, f):
        f.decorators.append(self)
        return f


retry = _Deco("retry", times=3)
catch = _Deco("catch", var="err")


# ---------------------------------------------------------------- valid flows


class LinearFlow:
    """A linear flow.

    It has two lines of doc.
    """

    @step
    def start(self):
        """Begin here."""
        self.x = 1
        self.next(self.middle)

    @catch
    @retry
    @step
    def middle(self):
        self.x += 1
        self.next(self.end)

    @step
    def end(self):
        """Finish.

        Nothing else.
        """


class SplitFlow:
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.v = 1
        self.next(self.join)

    @step
    def b(self):
        self.v = 2
        self.next(self.b2)

    @step
    def b2(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.v for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


class ForeachFlow:
    items = ["class", "level"]

    @step
    def start(self):
        self.next(self.fan)

    @step
    def fan(self):
        self.items, (self.other, *self.rest) = [1, 2, 3], (4, 5, 6)
        setattr(self, "via_setattr", 1)
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.out = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.outs = [i.out for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


class NestedForeachFlow:
    @step
    def start(self):
        self.outer = [1, 2]
        self.next(self.per_outer, foreach="outer")

    @step
    def per_outer(self):
        self.inner = [3, 4]
        self.next(self.per_inner, foreach="inner")

    @step
    def per_inner(self):
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class SplitInForeachFlow:
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.next(self.left, self.right)

    @step
    def left(self):
        self.next(self.pair_join)

    @step
    def right(self):
        self.next(self.pair_join)

    @step
    def pair_join(self, inputs):
        self.next(self.each_join)

    @step
    def each_join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class SwitchFlow:
    @step
    def start(self):
        self.route = "big"
        self.next({"big": self.big, "small": self.small, 3: self.small}, condition="route")

    @step
    def big(self):
        self.next(self.end)

    @step
    def small(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class SwitchLoopFlow:
    """Loops in 'body' until done."""

    @step
    def start(self):
        self.i = 0
        self.next(self.body)

    @step
    def body(self):
        self.i += 1
        self.flag = "again" if self.i < 3 else "done"
        self.next({"again": self.body, "done": self.end}, condition="flag")

    @step
    def end(self):
        pass


class SwitchInForeachFlow:
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.kind = "a"
        self.next({"a": self.path_a, "b": self.path_b}, condition="kind")

    @step
    def path_a(self):
        self.next(self.join)

    @step
    def path_b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class ParamForeachFlow:
    """foreach over a class attribute (as a Parameter would be) that no step assigns."""

    values = (1, 2, 3)

    @step
    def start(self):
        self.next(self.each, foreach="values")

    @step
    def each(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class HelperForeachFlow:
    """foreach over an attribute set by a helper method, not by a step."""

    def _load(self):
        self.rows = [1, 2]

    @step
    def start(self):
        self._load()
        self.next(self.each, foreach="rows")

    @step
    def each(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class _BaseSteps:
    @step
    def start(self):
        self.next(self.end)


class InheritedFlow(_BaseSteps):
    @step
    def end(self):
        pass


# --------------------------------------------------------- one broken rule each


class BadReserved:
    @step
    def start(self):
        self.next(self.input)

    @step
    def input(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadNoStart:
    @step
    def begin(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadNoEnd:
    @step
    def start(self):
        self.next(self.finish)

    @step
    def finish(self):
        pass


class BadStartIncoming:
    @step
    def start(self):
        self.flag = "x"
        self.next({"x": self.start, "y": self.end}, condition="flag")

    @step
    def end(self):
        pass


class BadEndOutgoing:
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        self.next(self.end)


class BadEndNext:
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        self.next()


class BadEndNextNotTail:
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        if False:
            self.next(self.start)
        pass


class BadEndJoin:
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.end)

    @step
    def b(self):
        self.next(self.end)

    @step
    def end(self, inputs):
        pass


class BadStepName:
    @step
    def start(self):
        self.next(self.Train)

    @step
    def Train(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadTooManyArgs:
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self, inputs, extra):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadJoinAndSplit:
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.c, self.d)

    @step
    def c(self):
        self.next(self.end)

    @step
    def d(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadNoSelf:
    @step
    def start(self):
        self.next(self.a)

    @staticmethod
    @step
    def a():
        pass

    @step
    def end(self):
        pass


class BadTwoNexts:
    @step
    def start(self):
        if self.__class__:
            self.next(self.a)
        else:
            self.next(self.end)

    @step
    def a(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadMissingNext:
    @step
    def start(self):
        self.next(self.train)

    @step
    def train(self):
        self.model = 1

    @step
    def end(self):
        pass


class BadNextNotLast:
    @step
    def start(self):
        self.next(self.train)

    @step
    def train(self):
        self.next(self.end)
        self.model = 1

    @step
    def end(self):
        pass


class BadInvalidTransition:
    @step
    def start(self):
        self.items = [1]
        self.next(self.a, self.end, foreach="items")

    @step
    def a(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadSwitchVariableKey:
    @step
    def start(self):
        key = "x"
        self.route = "x"
        self.next({key: self.a, "y": self.end}, condition="route")

    @step
    def a(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadUnknownTransition:
    @step
    def start(self):
        self.next(self.missing)

    @step
    def end(self):
        pass


class BadNotAStep:
    @step
    def start(self):
        self.next(self.helper)

    def helper(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadLoop:
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self):
        self.next(self.b)

    @step
    def b(self):
        self.next(self.a)

    @step
    def end(self):
        pass


class SwitchBackLoop:
    """Beyond Metaflow 2.19: a switch may loop back to an earlier step (no split in between)."""

    @step
    def start(self):
        self.i = 0
        self.next(self.body)

    @step
    def body(self):
        self.i += 1
        self.next(self.check)

    @step
    def check(self):
        self.flag = "again" if self.i < 3 else "done"
        self.next({"again": self.body, "done": self.end}, condition="flag")

    @step
    def end(self):
        pass


class BadSwitchBackLoop:
    """A loop back through a switch may not contain a split and its join."""

    @step
    def start(self):
        self.i = 0
        self.next(self.body)

    @step
    def body(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.check)

    @step
    def check(self):
        self.flag = "again"
        self.next({"again": self.body, "done": self.end}, condition="flag")

    @step
    def end(self):
        pass


class BadOrphan:
    @step
    def start(self):
        self.next(self.end)

    @step
    def lonely(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadUnjoinedSplit:
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.end)

    @step
    def b(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadJoinMissingBranch:
    """The inner split of 'a' is never joined: its branches go straight to the outer join."""

    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.a1, self.a2)

    @step
    def a1(self):
        self.next(self.join)

    @step
    def a2(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadJoinWithoutSplit:
    @step
    def start(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadCrossJoin:
    """'y' is a branch of two different splits, so 'ja' joins unrelated splits."""

    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.x, self.y)

    @step
    def x(self):
        self.next(self.ja)

    @step
    def y(self):
        self.next(self.ja)

    @step
    def ja(self, inputs):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.z, self.y)

    @step
    def z(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadSwitchOneCase:
    @step
    def start(self):
        self.route = "only"
        self.next({"only": self.end}, condition="route")

    @step
    def end(self):
        pass


class BadEmptyForeach:
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.join, foreach="items")

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadSwitchToJoin:
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.route = "x"
        self.next({"x": self.join, "y": self.a2}, condition="route")

    @step
    def a2(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class BadForeachSource:
    @step
    def start(self):
        self.itmes = [1, 2]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
