import sys; print("bench_guest.py: placeholder")
