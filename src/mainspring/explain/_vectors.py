"""Four float64 lanes as one value in numba code, and array reads without index checks.

Numba turns LLVM's SLP vectorizer off and cannot tell LLVM that two arrays do not overlap, so the
kernel's per-point arithmetic, written lane by lane, compiled to scalar instructions. Here a
``vec4`` is an LLVM ``<4 x double>`` (one 256-bit register with AVX2, two 128-bit ones
without): :func:`load4` and :func:`store4` move four consecutive float64 of an array, and ``+``,
``-`` and ``*`` work lane by lane on two vectors or on a vector and a number (put in every lane).
Each lane is rounded exactly as the scalar operation would be (IEEE, no fused multiply-add), so
the results do not depend on the machine's vector width or on FMA.

Numba also guards every ``array[i]`` with a signed ``i`` against negative indices; in the
kernel's loops those checks were about a third of the instructions per node. :func:`get` reads
``array.flat[i]`` without it. None of these check bounds (numba does not either, by default):
the kernel's indices come from :mod:`mainspring.explain.layout` and are valid by construction.

Only :mod:`mainspring.explain._kernel` imports this module (numba is the ``explain`` extra).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from llvmlite import ir  # type: ignore[import-untyped]
from numba import types
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, overload, register_model

_DOUBLE4 = ir.VectorType(ir.DoubleType(), 4)


class Vec4(types.Type):
    """The numba type of four float64 lanes."""

    def __init__(self) -> None:
        super().__init__(name="vec4")


vec4 = Vec4()


@register_model(Vec4)
class _Vec4Model(models.PrimitiveModel):
    def __init__(self, dmm: Any, fe_type: Any) -> None:
        super().__init__(dmm, fe_type, _DOUBLE4)  # type: ignore[no-untyped-call]


def _contiguous(array: Any) -> None:
    if not (isinstance(array, types.Array) and array.layout == "C"):
        raise TypingError(f"expected a C-contiguous array, not {array}")


def _element(context: Any, builder: Any, array_type: Any, array: Any, index: Any) -> Any:
    """The address of ``array.flat[index]``."""
    return builder.gep(context.make_array(array_type)(context, builder, array).data, [index])


@intrinsic
def _get(typingctx: Any, array: Any, index: Any) -> Any:
    _contiguous(array)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.load(_element(context, builder, sig.args[0], args[0], args[1]))

    return array.dtype(array, index), codegen


@intrinsic
def _load4(typingctx: Any, array: Any, index: Any) -> Any:
    _contiguous(array)
    if array.dtype != types.float64:
        raise TypingError(f"vec4 lanes are float64, not {array.dtype}")

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        address = _element(context, builder, sig.args[0], args[0], args[1])
        return builder.load(builder.bitcast(address, _DOUBLE4.as_pointer()), align=8)

    return vec4(array, index), codegen


@intrinsic
def _store4(typingctx: Any, array: Any, index: Any, value: Any) -> Any:
    _contiguous(array)
    if array.dtype != types.float64 or not isinstance(value, Vec4):
        raise TypingError(f"store4 puts a vec4 into a float64 array, not {value} into {array}")

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        address = _element(context, builder, sig.args[0], args[0], args[1])
        builder.store(args[2], builder.bitcast(address, _DOUBLE4.as_pointer()), align=8)
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


@intrinsic
def _splat(typingctx: Any, x: Any) -> Any:
    if not isinstance(x, (types.Float, types.Integer)):
        raise TypingError(f"only a number goes into every lane, not {x}")

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        value = context.cast(builder, args[0], sig.args[0], types.float64)
        lane = builder.insert_element(
            ir.Constant(_DOUBLE4, ir.Undefined), value, ir.Constant(ir.IntType(32), 0)
        )
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), 4), [0, 0, 0, 0])
        return builder.shuffle_vector(lane, ir.Constant(_DOUBLE4, ir.Undefined), zeros)

    return vec4(x), codegen


#: ``get(array, i)``: ``array.flat[i]`` without the negative-index check
get: Callable[..., Any] = _get
#: ``load4(array, i)``: ``array.flat[i:i + 4]`` as a vec4
load4: Callable[..., Any] = _load4
#: ``store4(array, i, v)``: ``array.flat[i:i + 4] = v``
store4: Callable[..., None] = _store4
#: ``splat(x)``: the number ``x`` in every lane
splat: Callable[..., Any] = _splat


def _lanewise(instruction: str) -> Any:
    @intrinsic
    def apply(typingctx: Any, a: Any, b: Any) -> Any:
        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            return getattr(builder, instruction)(args[0], args[1])

        return vec4(vec4, vec4), codegen

    return apply


def _overload(python_op: Callable[[Any, Any], Any], apply: Any) -> None:
    # numba requires the implementations' parameters to be spelled as the typing function's
    def both(a: Any, b: Any) -> Any:
        return apply(a, b)

    def number_right(a: Any, b: Any) -> Any:
        return apply(a, splat(b))

    def number_left(a: Any, b: Any) -> Any:
        return apply(splat(a), b)

    @overload(python_op)
    def implementation(a: Any, b: Any) -> Any:
        number = (types.Float, types.Integer)
        if isinstance(a, Vec4) and isinstance(b, Vec4):
            return both
        if isinstance(a, Vec4) and isinstance(b, number):
            return number_right
        if isinstance(a, number) and isinstance(b, Vec4):
            return number_left
        return None


_overload(operator.add, _lanewise("fadd"))
_overload(operator.sub, _lanewise("fsub"))
_overload(operator.mul, _lanewise("fmul"))
