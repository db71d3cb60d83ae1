"""Full fine-tuning: every parameter trains."""

from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, NoParams, register


@register("full")
class FullFineTuning(Method):
    trains_base_weights = True

    def setup(self, ctx: MethodContext, params: NoParams) -> MethodSetup:
        model = ctx.load_model()
        model.requires_grad_(True)
        return MethodSetup(model)
