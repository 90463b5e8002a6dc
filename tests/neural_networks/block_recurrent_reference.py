"""An independent float64 reference of the original `brt` model, and its known answers.

`reference_run` follows the model's equations block by block with variable
shapes, as the original does: the XL memory is carried from block to block
(absent for the first block, not stored after a partial last block), and
positions are right-aligned in the 2C window. It reads the original's torch
parameter names, so it shares no code with `neural_networks/block_recurrent`.
"""

import math

import numpy as np

# (t, b) -> two logits; rows t = 0..6, for batch rows 0 and 1.
G1_LOGITS_BLO = np.array([
    [[-0.238000014510, -0.151661994706], [-0.239407308849, -0.014502810131],
     [-0.237711466355, -0.146682689282], [-0.238839333057, -0.147054631324],
     [-0.257809299075, -0.019145796319], [-0.254041078998, -0.017793081912],
     [-0.239805301042, -0.125665283934]],
    [[-0.227291589012, -0.009753739846], [-0.231374674599, -0.149119045712],
     [-0.238033590181, -0.146594843438], [-0.246110158615, -0.015469155261],
     [-0.243230855042, -0.141565311953], [-0.254286173979, -0.017818722873],
     [-0.250614997680, 0.000639681500]]])
G2_LOGITS_BLO = np.array([
    [[-0.234392358076, -0.121575392726], [-0.237531798701, 0.009265469654],
     [-0.249610251418, -0.163360100962], [-0.267039896357, -0.161396401944],
     [-0.273004248124, -0.051011776193], [-0.259113930573, -0.048834013033],
     [-0.256791493215, -0.181346639243]],
    [[-0.212145421209, 0.027915451676], [-0.235956618298, -0.136354815013],
     [-0.256841442027, -0.164292100685], [-0.275915881487, -0.037902541537],
     [-0.257469480900, -0.175660266188], [-0.273102011261, -0.051591157421],
     [-0.259004620708, -0.048202098686]]])
# Bits 1011001 and 0110100 as token ids; the one-hot's third column is unused.
INPUT_BL = np.array([[1, 0, 1, 1, 0, 0, 1], [0, 1, 1, 0, 1, 0, 0]], np.int32)
CONFIGS = {  # name: (d_model, num_heads, num_layers, chunk, states, r)
    'G1': dict(d_model=16, num_heads=2, num_layers=3, chunk_size=2,
               num_state_vectors=3, recurrent_layer_index=2),
    'G2': dict(d_model=16, num_heads=2, num_layers=3, chunk_size=1,
               num_state_vectors=2, recurrent_layer_index=3),
}
EXPECTED = {'G1': G1_LOGITS_BLO, 'G2': G2_LOGITS_BLO}


def torch_parameter_shapes(D, H, N, I, O, S, r):
  """The original's parameters, in its order, as (name, torch shape, kind)."""
  K, F = D // H, int(D * 4 * 2 / 3)
  shapes = [('model.token_emb.weight', (D, I), 'matrix')]
  for l in range(N):
    p = f'model.layers.{l}'
    recurrent = l == r - 1
    shapes += [(f'{p}.0.norm.gamma', (D,), 'gain'),
               (f'{p}.0.to_q.weight', (H * K, D), 'matrix'),
               (f'{p}.0.to_kv.weight', (2 * K, D), 'matrix')]
    if recurrent:
      shapes += [(f'{p}.0.attn.q_scale', (K,), 'gain'),
                 (f'{p}.0.attn.k_scale', (K,), 'gain')]
    shapes.append((f'{p}.0.to_out.weight',
                   (D, (2 if recurrent else 1) * H * K), 'matrix'))
    if recurrent:
      s = f'{p}.0.state_container'
      shapes += [(f'{s}.init_state', (S, D), 'state'),
                 (f'{s}.state_pos_ids', (S, D), 'state'),
                 (f'{s}.learned_ema_beta', (D,), 'state'),
                 (f'{s}.state_norm.gamma', (D,), 'gain'),
                 (f'{s}.q_to_state.weight', (H * K, D), 'matrix'),
                 (f'{s}.q_from_state.weight', (H * K, D), 'matrix'),
                 (f'{s}.state_to_q.weight', (H * K, D), 'matrix'),
                 (f'{s}.state_to_kv.weight', (2 * K, D), 'matrix'),
                 (f'{s}.to_state_out.weight', (D, 2 * H * K), 'matrix')]
      for attn in ('to_state_cross_attn', 'state_self_attn',
                   'from_state_cross_attn'):
        shapes += [(f'{s}.{attn}.q_scale', (K,), 'gain'),
                   (f'{s}.{attn}.k_scale', (K,), 'gain')]
      shapes += [(f'{s}.state_out_to_gate.weight', (D, D), 'matrix'),
                 (f'{s}.state_out_to_gate.bias', (D,), 'bias')]
    shapes += [(f'{p}.1.0.gamma', (D,), 'gain'),
               (f'{p}.1.1.weight', (2 * F, D), 'matrix'),
               (f'{p}.1.3.weight', (D, F), 'matrix')]
  shapes += [('model.to_logits.0.gamma', (D,), 'gain'),
             ('model.to_logits.1.weight', (O, D), 'matrix')]
  return shapes


def known_answer_state_dict(D, H, N, I, O, S, r) -> dict[str, np.ndarray]:
  """The known-answer fill: parameter c, flat index k -> a sine of 0.5 k + c."""
  state_dict = {}
  for c, (name, shape, kind) in enumerate(
      torch_parameter_shapes(D, H, N, I, O, S, r)):
    wave = np.sin(0.5 * np.arange(np.prod(shape), dtype=np.float64) + c)
    wave = wave.reshape(shape)
    state_dict[name] = {'gain': 1 + 0.2 * wave, 'state': 0.5 * wave,
                        'bias': 0.1 * wave,
                        'matrix': wave / np.sqrt(shape[-1])}[kind]
  return state_dict


def random_state_dict(rng: np.random.Generator, D, H, N, I, O, S, r,
                      ) -> dict[str, np.ndarray]:
  """Random weights of every kind, large enough to make each part matter."""
  state_dict = {}
  for name, shape, kind in torch_parameter_shapes(D, H, N, I, O, S, r):
    noise = rng.standard_normal(shape)
    state_dict[name] = {'gain': 1 + 0.3 * noise, 'state': noise,
                        'bias': 0.3 * noise,
                        'matrix': noise / np.sqrt(shape[-1])}[kind]
  return state_dict


_erf = np.vectorize(math.erf)


def _layer_norm(u, gain):
  centred = u - u.mean(-1, keepdims=True)
  return gain * centred / np.sqrt((centred**2).mean(-1, keepdims=True) + 1e-5)


def _l2n(u):
  return u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-12)


def _heads(u, H):  # (B, n, H K) -> (B, H, n, K)
  B, n, E = u.shape
  return u.reshape(B, n, H, E // H).transpose(0, 2, 1, 3)


def _merge(u):  # (B, H, n, K) -> (B, n, H K)
  B, H, n, K = u.shape
  return u.transpose(0, 2, 1, 3).reshape(B, n, H * K)


def _attention(q, k, v, mask=None):
  """q (B, H, n, K); one shared head k, v (B, m, K); mask (n, m)."""
  logits = np.einsum('bhnk,bmk->bhnm', q, k) / np.sqrt(q.shape[-1])
  if mask is not None:
    logits = np.where(mask, logits, -np.inf)
  logits = logits - logits.max(-1, keepdims=True)
  weights = np.exp(logits)
  weights = weights / weights.sum(-1, keepdims=True)
  return np.einsum('bhnm,bmk->bhnk', weights, v)


def _rotary(u, position, C, sign):
  """Rotary + XPos at window slots `position` (XPos power times `sign`)."""
  K = u.shape[-1]
  half = np.arange(0, K, 2)
  angle = position[:, None] * (1.0 / 10000.0**(half / K))[None, :]
  angle = np.concatenate([angle, angle], -1)
  zeta = (half + 0.4 * K) / (1.4 * K)
  scale = zeta[None, :]**(sign * (position[:, None] - C) / 512)
  scale = np.concatenate([scale, scale], -1)
  first, second = u[..., :K // 2], u[..., K // 2:]
  turned = np.concatenate([-second, first], -1)
  return (u * np.cos(angle) + turned * np.sin(angle)) * scale


def reference_run(state_dict, tokens_BL, num_heads, num_layers, chunk_size,
                  recurrent_layer_index):
  """`(logits_BLO, final_state_BSD)` of the original model, in float64."""
  sd = {k: np.asarray(v, np.float64) for k, v in state_dict.items()}
  H, N, C, r = num_heads, num_layers, chunk_size, recurrent_layer_index
  E = sd['model.token_emb.weight']
  D, I = E.shape
  K = D // H
  B, L = tokens_BL.shape
  x = np.eye(I)[tokens_BL] @ E.T
  container = f'model.layers.{r - 1}.0.state_container'
  state = np.broadcast_to(sd[f'{container}.init_state'],
                          (B,) + sd[f'{container}.init_state'].shape)
  memory = [None] * N
  outputs = []
  for start in range(0, L, C):
    xb = x[:, start:start + C]
    n = xb.shape[1]
    next_state = state
    for l in range(N):
      p = f'model.layers.{l}.0'
      h = _layer_norm(xb, sd[f'{p}.norm.gamma'])
      q = _heads(h @ sd[f'{p}.to_q.weight'].T, H)
      kv = h @ sd[f'{p}.to_kv.weight'].T
      k, v = kv[..., :K], kv[..., K:]
      if memory[l] is None:
        keys, values = k, v
      else:
        keys = np.concatenate([memory[l][0], k], 1)
        values = np.concatenate([memory[l][1], v], 1)
      m = keys.shape[1]
      if l == r - 1:
        q = _l2n(q) * sd[f'{p}.attn.q_scale']
        keys = _l2n(keys) * sd[f'{p}.attn.k_scale']
      query_position = np.arange(2 * C - n, 2 * C)
      key_position = np.arange(2 * C - m, 2 * C)
      q = _rotary(q, query_position, C, 1)
      keys = _rotary(keys, key_position, C, -1)
      mask = key_position[None, :] <= query_position[:, None]
      out = _merge(_attention(q, keys, values, mask))
      if l == r - 1:
        c = f'{p}.state_container'
        state_in = (_layer_norm(state, sd[f'{c}.state_norm.gamma'])
                    + sd[f'{c}.state_pos_ids'])
        state_kv = state_in @ sd[f'{c}.state_to_kv.weight'].T
        state_k, state_v = state_kv[..., :K], state_kv[..., K:]
        scale = lambda name, u: _l2n(u) * sd[f'{c}.{name}']
        read_q = _heads(h @ sd[f'{c}.q_to_state.weight'].T, H)
        read = _attention(scale('to_state_cross_attn.q_scale', read_q),
                          scale('to_state_cross_attn.k_scale', state_k),
                          state_v)
        out = np.concatenate([out, _merge(read)], -1)
        self_q = _heads(state_in @ sd[f'{c}.state_to_q.weight'].T, H)
        self_out = _attention(scale('state_self_attn.q_scale', self_q),
                              scale('state_self_attn.k_scale', state_k),
                              state_v)
        cross_q = _heads(state_in @ sd[f'{c}.q_from_state.weight'].T, H)
        cross_out = _attention(scale('from_state_cross_attn.q_scale', cross_q),
                               scale('from_state_cross_attn.k_scale', k), v)
        both = np.concatenate([self_out, cross_out], -1)  # (B, H, S, 2K)
        both = both.transpose(0, 2, 1, 3).reshape(B, state.shape[1], 2 * D)
        z = (both @ sd[f'{c}.to_state_out.weight'].T
             @ sd[f'{c}.state_out_to_gate.weight'].T
             + sd[f'{c}.state_out_to_gate.bias'])
        gate = 1 / (1 + np.exp(-sd[f'{c}.learned_ema_beta']))
        next_state = gate * z + (1 - gate) * state
      xb = xb + out @ sd[f'{p}.to_out.weight'].T
      f = f'model.layers.{l}.1'
      u = _layer_norm(xb, sd[f'{f}.0.gamma']) @ sd[f'{f}.1.weight'].T
      value, gate_in = np.split(u, 2, axis=-1)
      gelu = 0.5 * gate_in * (1 + _erf(gate_in / np.sqrt(2)))
      xb = xb + (value * gelu) @ sd[f'{f}.3.weight'].T
      if n == C:
        memory[l] = (k, v)
    state = next_state
    outputs.append(xb)
  y = _layer_norm(np.concatenate(outputs, 1), sd['model.to_logits.0.gamma'])
  return y @ sd['model.to_logits.1.weight'].T, state
