"""Four float64 lanes as one value in numba code (one 256-bit register on AVX2 machines).

Numba leaves LLVM's SLP vectorizer off and cannot prove that two arrays do not overlap, so the
kernel's per-point arithmetic, written lane by lane, compiles to scalar instructions. A
:data:`vec4` is an LLVM ``<4 x double>``: :func:`load4` and :func:`store4` move four consecutive
elements of a 1-d float64 array (no bounds or negative-index checks: the kernel's indices are
valid by construction), ``+``, ``-`` and ``*`` work lane by lane on two vectors or on a vector and
a float (broadcast). Each operation is the IEEE one, rounded as the scalar one is, without fused
multiply-adds, so results are the same on every x86-64 machine with or without FMA.

Only :mod:`mainspring.explain._kernel` imports this (numba and llvmlite are the ``explain`` extra).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from llvmlite import ir
from numba import types
from numba.extending import intrinsic, models, overload, register_model

_DOUBLE4 = ir.VectorType(ir.DoubleType(), 4)


class Vec4(types.Type):  # type: ignore[misc]
    """The numba type of four float64 lanes."""

    def __init__(self) -> None:
        super().__init__(name="vec4")


vec4 = Vec4()


@register_model(Vec4)
class _Vec4Model(models.PrimitiveModel):  # type: ignore[misc]
    def __init__(self, dmm: Any, fe_type: Any) -> None:
        super().__init__(dmm, fe_type, _DOUBLE4)


def _address(context: Any, builder: Any, array_type: Any, array: Any, index: Any) -> Any:
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), _DOUBLE4.as_pointer())


def _check_array(array: Any, dtype: Any = types.float64) -> None:
    if not (isinstance(array, types.Array) and array.layout == "C"):
        raise TypeError(f"expected a C-contiguous array, not {array}")
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"vec4 lanes come from float64 arrays, not {array}")


@intrinsic  # type: ignore[misc]
def get(typingctx: Any, array: Any, index: Any) -> Any:
    """``array.flat[index]`` without numba's check for negative indices (``index`` is never one)."""
    _check_array(array, dtype=None)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.load(builder.gep(data, [args[1]]))

    return array.dtype(array, index), codegen


@intrinsic  # type: ignore[misc]
def load4(typingctx: Any, array: Any, index: Any) -> Any:
    """``array[index:index + 4]`` as a vec4."""
    _check_array(array)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.load(_address(context, builder, sig.args[0], args[0], args[1]), align=8)

    return vec4(array, index), codegen


@intrinsic  # type: ignore[misc]
def store4(typingctx: Any, array: Any, index: Any, value: Any) -> Any:
    """``array[index:index + 4] = value``."""
    _check_array(array)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        builder.store(args[2], _address(context, builder, sig.args[0], args[0], args[1]), align=8)
        return context.get_dummy_value()

    return types.none(array, index, vec4), codegen


@intrinsic  # type: ignore[misc]
def splat(typingctx: Any, x: Any) -> Any:
    """``x`` in every lane."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        value = context.cast(builder, args[0], sig.args[0], types.float64)
        lane = builder.insert_element(
            ir.Constant(_DOUBLE4, ir.Undefined), value, ir.Constant(ir.IntType(32), 0)
        )
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), 4), [0, 0, 0, 0])
        return builder.shuffle_vector(lane, ir.Constant(_DOUBLE4, ir.Undefined), zeros)

    return vec4(x), codegen


def _lanewise(instruction: str) -> Any:
    @intrinsic  # type: ignore[misc]
    def apply(typingctx: Any, a: Any, b: Any) -> Any:
        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            return getattr(builder, instruction)(args[0], args[1])

        return vec4(vec4, vec4), codegen

    return apply


def _overload(python_op: Callable[[Any, Any], Any], apply: Any) -> None:
    # the implementations' parameters must be spelled as the typing function's (numba checks)
    def both(a: Any, b: Any) -> Any:
        return apply(a, b)

    def scalar_right(a: Any, b: Any) -> Any:
        return apply(a, splat(b))

    def scalar_left(a: Any, b: Any) -> Any:
        return apply(splat(a), b)

    @overload(python_op)  # type: ignore[misc]
    def implementation(a: Any, b: Any) -> Any:
        scalar = (types.Float, types.Integer)
        if isinstance(a, Vec4) and isinstance(b, Vec4):
            return both
        if isinstance(a, Vec4) and isinstance(b, scalar):
            return scalar_right
        if isinstance(a, scalar) and isinstance(b, Vec4):
            return scalar_left
        return None


_overload(operator.add, _lanewise("fadd"))
_overload(operator.sub, _lanewise("fsub"))
_overload(operator.mul, _lanewise("fmul"))
