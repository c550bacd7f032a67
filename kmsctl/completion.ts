/**
 * Shell completion: the script asks `kmsctl __complete <words…> <current>` for candidates, which
 * walks the same commander tree the parser uses, so completion never drifts from the commands.
 */
import type { Command } from 'commander';

export function completionScript(shell: 'bash' | 'zsh'): string {
  const bash = `_kmsctl_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local IFS=$'\\n'
  COMPREPLY=( $(kmsctl __complete "\${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null) )
}
complete -o default -F _kmsctl_complete kmsctl
`;
  if (shell === 'bash') return `# kmsctl completion for bash: source <(kmsctl completion bash)\n${bash}`;
  return `# kmsctl completion for zsh: source <(kmsctl completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n${bash}`;
}

function longOptions(cmd: Command): string[] {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) {
    for (const option of c.options) if (option.long !== undefined) names.push(option.long);
  }
  return names;
}

/** Candidates for the last word, given the words before it (without `kmsctl`). */
export function completeWords(program: Command, words: string[]): string[] {
  const current = words.length === 0 ? '' : (words[words.length - 1] as string);
  let cmd = program;
  for (const word of words.slice(0, -1)) {
    const sub = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (sub !== undefined) cmd = sub;
  }
  const candidates = current.startsWith('-') ? [...longOptions(cmd), '--help'] : cmd.commands.map((c) => c.name()).filter((n) => n !== 'help');
  return [...new Set(candidates)].filter((c) => c.startsWith(current)).sort();
}
