import os, torch

os.environ.setdefault('MPLBACKEND', 'Agg')
torch.set_num_threads(1)  # tests check numbers, not speed; one thread is also immune to a busy machine
