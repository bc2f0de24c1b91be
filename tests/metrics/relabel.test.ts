import { describe, expect, it } from 'vitest';
import { relabelInto, renderFamilies, sanitiseName, type Family } from '../../src/metrics/relabel.js';

const LLAMA = `# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 12
# HELP llamacpp:requests_processing Number of requests processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing{slot="0"} 1
`;

describe('re-exporting llama-server metrics', () => {
  it('sanitises names and adds a model label, HELP/TYPE once per family', () => {
    const families = new Map<string, Family>();
    relabelInto(families, LLAMA, 'a:latest');
    relabelInto(families, LLAMA.replace(' 12', ' 7'), 'b"x');
    const text = renderFamilies(families);
    expect(text).not.toContain('llamacpp:');
    expect(text.match(/# TYPE llamacpp_prompt_tokens_total counter/g)).toHaveLength(1);
    expect(text).toContain('llamacpp_prompt_tokens_total{model="a:latest"} 12');
    expect(text).toContain('llamacpp_prompt_tokens_total{model="b\\"x"} 7');
    expect(text).toContain('llamacpp_requests_processing{model="a:latest",slot="0"} 1');
  });

  it('keeps names valid', () => {
    expect(sanitiseName('llamacpp:kv_cache_usage_ratio')).toBe('llamacpp_kv_cache_usage_ratio');
    expect(sanitiseName('9x')).toBe('_9x');
  });
});
