import { describe, expect, it } from 'vitest';
import { pairProjector } from '../../src/catalog/projector.js';

describe('pairing a model with its vision projector', () => {
  it('a folder with one model takes its projector whatever its name', () => {
    expect(
      pairProjector('/m/gemma-3-4b-it-Q4_K_M.gguf', [
        'gemma-3-4b-it-Q4_K_M.gguf',
        'mmproj-model-f16.gguf',
        'README.md',
      ]),
    ).toBe('mmproj-model-f16.gguf');
  });

  it('the shards of one split model count as one model', () => {
    const dir = ['big-Q4_K_M-00001-of-00002.gguf', 'big-Q4_K_M-00002-of-00002.gguf', 'mmproj-F16.gguf'];
    expect(pairProjector('/m/big-Q4_K_M-00001-of-00002.gguf', dir)).toBe('mmproj-F16.gguf');
  });

  it('a shared folder pairs by name and leaves other models without one', () => {
    const dir = [
      'Qwen2.5-VL-7B-Instruct-Q4_K_M.gguf',
      'mmproj-Qwen2.5-VL-7B-Instruct-f16.gguf',
      'gemma-3-4b-it-Q4_K_M.gguf',
      'Llama-3.2-1B-Q8_0.gguf',
      'gemma-3-4b-it-mmproj-bf16.gguf',
    ];
    expect(pairProjector('/m/Qwen2.5-VL-7B-Instruct-Q4_K_M.gguf', dir)).toBe('mmproj-Qwen2.5-VL-7B-Instruct-f16.gguf');
    expect(pairProjector('/m/gemma-3-4b-it-Q4_K_M.gguf', dir)).toBe('gemma-3-4b-it-mmproj-bf16.gguf');
    expect(pairProjector('/m/Llama-3.2-1B-Q8_0.gguf', dir)).toBeUndefined();
  });

  it('an unnamed projector in a shared folder is not guessed', () => {
    expect(pairProjector('/m/a-Q4_0.gguf', ['a-Q4_0.gguf', 'b-Q4_0.gguf', 'mmproj-model-f16.gguf'])).toBeUndefined();
  });

  it('no projector, no pairing', () => {
    expect(pairProjector('/m/a.gguf', ['a.gguf'])).toBeUndefined();
  });
});
