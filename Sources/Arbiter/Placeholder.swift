import GuestModel
