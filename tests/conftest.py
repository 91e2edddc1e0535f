import os, torch

os.environ.setdefault('MPLBACKEND', 'Agg')
torch.set_num_threads(2)
