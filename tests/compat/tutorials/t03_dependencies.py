# Upstream embed tutorial 03 (Python tab) plus tutorial 01's runner lines.
import cloaca

with cloaca.WorkflowBuilder("diamond") as builder:
    builder.description("Fan out then fan in")

    @cloaca.task()
    def fetch(context): return context

    @cloaca.task(dependencies=["fetch"])
    def transform_a(context): return context

    @cloaca.task(dependencies=["fetch"])
    def transform_b(context): return context

    @cloaca.task(dependencies=["transform_a", "transform_b"])
    def combine(context): return context


runner = cloaca.DefaultRunner("sqlite:///app.db")
result = runner.execute("diamond", cloaca.Context())
print("status:", result.status)
runner.shutdown()
