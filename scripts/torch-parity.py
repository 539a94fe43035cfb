# Run by scripts/torch-parity.ts: loads its checkpoints into the PyTorch modules of docs/pytorch.md
# (the python blocks of that page, executed as written) and compares logits with crowdtrain's.
import json, re, struct, sys, types, math
import torch
import numpy as np
# A minimal stand-in for the safetensors package (not packaged by Debian): same two functions.
def _read(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n]); body = b[8 + n:]
    return h, body
def load_file(path):
    h, body = _read(path)
    return {k: torch.from_numpy(np.frombuffer(body[v['data_offsets'][0]:v['data_offsets'][1]], dtype=np.float32).copy()).reshape(v['shape']) for k, v in h.items() if k != '__metadata__'}
class _Open:
    def __init__(self, path, framework): self.h, _ = _read(path)
    def __enter__(self): return self
    def __exit__(self, *a): pass
    def metadata(self): return self.h['__metadata__']
st = types.ModuleType('safetensors'); st.safe_open = _Open
stt = types.ModuleType('safetensors.torch'); stt.load_file = load_file
sys.modules['safetensors'] = st; sys.modules['safetensors.torch'] = stt

doc = open(sys.argv[2]).read()
blocks = re.findall(r'```python\n(.*?)```', doc, re.S)
g = {}
exec(blocks[0], g)  # imports, load_weights, checkpoint_metadata
nn = g['nn']
for name in ['mnist-cnn', 'moby-dick-transformer']:
    path = f'{sys.argv[1]}/{name}.safetensors'
    src = [b for b in blocks if f'{name}-v' in b][0]
    src = re.sub(r'load_weights\(model, "[^"]+"\)', f'load_weights(model, {path!r})', src)
    src = src.split('print(')[0]
    src = src.split('\nimport json')[0]
    exec(src, g)
    model = g['model']
    d = json.load(open(f'{sys.argv[1]}/{name}.json'))
    B = d['batch']
    if name.startswith('moby'):
        x = torch.tensor(d['x']).reshape(B, 64).long()
    else:
        x = torch.tensor(d['x']).reshape(B, 1, 28, 28)
    with torch.no_grad():
        y = model(x).reshape(-1).numpy()
    ours = np.array(d['y'], dtype=np.float32)
    err = np.abs(y - ours).max() / (np.abs(ours).max())
    print(name, 'logits', y.shape, 'max |torch - crowdtrain| / max|logit| =', f'{err:.2e}', 'meta keys:', sorted(g['checkpoint_metadata'](path).keys()))
    assert err < 1e-4, name
print('ok')
