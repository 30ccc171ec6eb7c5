# Upstream embed tutorial 01 (Python tab), typed as a user would.
import cloaca

with cloaca.WorkflowBuilder("greeting") as builder:
    builder.description("Say hello")

    @cloaca.task()
    def hello(context):
        context.set("message", "Hello World!")
        return context


runner = cloaca.DefaultRunner("sqlite:///app.db")
result = runner.execute("greeting", cloaca.Context())
print("status:", result.status)
print("context:", result.final_context)
runner.shutdown()
