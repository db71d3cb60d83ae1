"""No training: the model as loaded, scored the same way as every trained row (the baseline)."""

from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, NoParams, register


@register("zero_shot")
class ZeroShot(Method):
    trains = False

    def setup(self, ctx: MethodContext, params: NoParams) -> MethodSetup:
        model = ctx.load_model()
        model.requires_grad_(False)
        return MethodSetup(model)
