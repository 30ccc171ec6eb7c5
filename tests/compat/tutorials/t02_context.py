# Upstream embed tutorial 02 (Python tab) plus tutorial 01's runner lines.
import cloaca

with cloaca.WorkflowBuilder("pipeline") as builder:
    builder.description("Pass data downstream")

    @cloaca.task()
    def produce(context):
        context.set("numbers", [1, 2, 3])
        return context

    @cloaca.task(dependencies=["produce"])
    def consume(context):
        nums = context.get("numbers")
        context.set("sum", sum(nums))
        return context


runner = cloaca.DefaultRunner("sqlite:///app.db")
result = runner.execute("pipeline", cloaca.Context())
print("status:", result.status)
print("sum:", result.final_context.get("sum"))
runner.shutdown()
