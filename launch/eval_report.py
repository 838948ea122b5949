"""Reports of launch/evaluate.py: the per-game table, the HNS chart, JSON.

Pure formatting of `evaluate.evaluate_games`' report dict (results per game
with 'game', 'task_id', 'episodes', 'mean_return', 'std_return',
'mean_agent_steps' (agent steps), 'truncated', 'human_normalized_score'; and
'mean_/median_human_normalized_score'); no flags.
"""

import json
from typing import Any, Dict, Optional

import tensorflow as tf


def format_table(report: Dict[str, Any]) -> str:
  """`evaluate_games`' report as a text table plus a mean/median HNS line.

  One row per game: name, task id, episodes, return mean ± std over episodes,
  mean episode length in agent steps, HNS of the mean return in percent ('n/a'
  for Catch) and, if any, how many episodes were cut by the frame cap.
  """
  width = max([4] + [len(r['game']) for r in report['results']])
  lines = [f'{"game":<{width}}  task  episodes  {"return (mean ± std)":>21}  '
           f'length (agent steps)  {"HNS (%)":>8}']
  for r in report['results']:
    hns = r['human_normalized_score']
    ret = f'{r["mean_return"]:.1f} ± {r["std_return"]:.1f}'
    lines.append(f'{r["game"]:<{width}}  {r["task_id"]:>4}  {r["episodes"]:>8}'
                 f'  {ret:>21}  {r["mean_agent_steps"]:>20.1f}  '
                 + (f'{100 * hns:>8.1f}' if hns is not None else f'{"n/a":>8}')
                 + (f'  [{sum(r["truncated"])} hit the frame cap]'
                    if any(r['truncated']) else ''))
  if report['median_human_normalized_score'] is None:
    lines.append('HNS not defined for these games (Catch).')
  else:
    count = sum(r['human_normalized_score'] is not None
                for r in report['results'])
    lines.append(f'mean HNS {100 * report["mean_human_normalized_score"]:.1f}'
                 f'%, median HNS '
                 f'{100 * report["median_human_normalized_score"]:.1f}% '
                 f'over {count} game{"s" if count > 1 else ""}')
  return '\n'.join(lines)


def plot_hns(report: Dict[str, Any], png_path: str) -> Optional[str]:
  """Bar chart of per-game HNS (%), best first; None (nothing written) if no
  game has an HNS."""
  rows = sorted(((r['human_normalized_score'], r['game'])
                 for r in report['results']
                 if r['human_normalized_score'] is not None), reverse=True)
  if not rows:
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(max(6.0, 2.0 + 0.3 * len(rows)), 4.5))
  ax.bar([g for _, g in rows], [100 * h for h, _ in rows])
  ax.axhline(100, color='k', ls='--', lw=1, label='human (100%)')
  median = 100 * report['median_human_normalized_score']
  ax.axhline(median, color='r', lw=1, label=f'median ({median:.1f}%)')
  ax.set_ylabel('human-normalised score (%)')
  ax.set_title(f'{len(rows)} games, {report["episodes"]} episodes each')
  ax.tick_params(axis='x', labelrotation=90)
  ax.legend()
  fig.tight_layout()
  with tf.io.gfile.GFile(png_path, 'wb') as f:  # any TF filesystem
    fig.savefig(f, format='png', dpi=100)
  plt.close(fig)
  return png_path


def write_json(value: Dict[str, Any], path: str) -> None:
  """Writes `value` as indented JSON at `path` (atomically, via a rename)."""
  tmp = f'{path}.tmp'
  with tf.io.gfile.GFile(tmp, 'w') as f:
    f.write(json.dumps(value, indent=2) + '\n')
  tf.io.gfile.rename(tmp, path, overwrite=True)
  print(f'wrote {path}', flush=True)
