"""Compute dtypes of the network: float32, or bfloat16 with float32 variables.

Keras mixed precision (`tf.keras.mixed_precision.Policy('mixed_bfloat16')`)
is applied per layer, not globally: the torso computes in the compute dtype
while its variables stay float32 (Keras AutoCastVariable:
read as bfloat16 inside the layer's call, stored, checkpointed, optimised and
published as float32), so checkpoints, the Reverb `variables` table and
exported SavedModels have one float32 format whatever the compute dtype, and a
run may resume with another one. What bfloat16's 8-bit mantissa would spoil
stays float32: the LSTM (its cell state accumulates small increments over
an episode, which bfloat16 rounds away; with a bfloat16 LSTM 3 of 6 Catch
runs stalled at a return of 0.42, with a float32 one 0 of 6, and it is ~2%
of the learner step's time; benchmarks/results/dtype_learning.md), the
policy and value heads (a value of 10 would have a resolution of 0.06; the
heads are < 0.1% of the step's FLOPs), logits, values, V-trace, the losses,
PopArt statistics and Distral soft values. bfloat16 has float32's exponent range, so no loss
scaling is needed (Kalamkar et al. 2019, "A Study of BFLOAT16 for Deep
Learning Training").
"""

from typing import Optional

import tensorflow as tf

COMPUTE_DTYPES = ('float32', 'bfloat16')
_POLICIES = {'float32': None, 'bfloat16': 'mixed_bfloat16'}


def check_compute_dtype(compute_dtype: str) -> str:
  """Returns `compute_dtype` if it is one of COMPUTE_DTYPES.

  Raises:
    ValueError: naming the allowed values otherwise.
  """
  if compute_dtype not in COMPUTE_DTYPES:
    raise ValueError(f'`compute_dtype` must be one of {COMPUTE_DTYPES}; got '
                     f'{compute_dtype!r}.')
  return compute_dtype


def keras_policy(compute_dtype: str
                 ) -> Optional[tf.keras.mixed_precision.Policy]:
  """The Keras dtype policy of layers computing in `compute_dtype`.

  None (the float32 default) for 'float32'; 'mixed_bfloat16' (float32
  variables, bfloat16 compute) for 'bfloat16'.

  Raises:
    ValueError: for a dtype not in COMPUTE_DTYPES.
  """
  name = _POLICIES[check_compute_dtype(compute_dtype)]
  return None if name is None else tf.keras.mixed_precision.Policy(name)
